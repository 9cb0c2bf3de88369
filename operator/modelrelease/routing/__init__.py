"""Traffic routers, one module each, behind one small interface."""
