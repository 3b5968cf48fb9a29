"""toolqueue: call-now, fetch-later SaaS API jobs for AI agents."""
