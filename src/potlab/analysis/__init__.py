"""Analysis of potentials and trajectories. Each function states its units."""
