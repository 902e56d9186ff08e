"""Request and response models of the REST API; requests reject unknown fields."""
