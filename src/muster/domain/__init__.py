"""The pure domain: data, validation, rendering and state rules. No I/O here."""
