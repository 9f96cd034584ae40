"""Restocking planner core: stock estimates, demand forecasts, visit scoring, pick lists
and routes, over plain inputs (see model.py). Only routing.py imports PyVRP, and only
plan.py/routing.py need it; the rest is standard library."""
