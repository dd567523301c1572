"""File formats: readers and writers around the core (models, tables, spatial data)."""
