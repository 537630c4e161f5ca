"""Analytics function: security trends computed in SQL (GET /analytics) and the dashboard page (GET /dashboard)."""
