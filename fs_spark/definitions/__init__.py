"""Feature definitions: the values users write, their YAML form, and how changes are judged."""
