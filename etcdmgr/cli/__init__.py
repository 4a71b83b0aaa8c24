"""Command-line front ends: `daemon`, `ctl` and the offline tools, all in one executable."""
