"""Reports for people: plots (PNG) and Markdown summaries."""
