"""The schema registry: versioned JSON Schemas per event type and their compatibility rules."""
