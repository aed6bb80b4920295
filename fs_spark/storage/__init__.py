"""Where and how feature data sits in Delta: paths, physical layout, time-travel reads."""
