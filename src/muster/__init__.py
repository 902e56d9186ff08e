"""muster: run versioned scripts on fleets of servers, safely and fast."""
