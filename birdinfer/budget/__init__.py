"""The budget report behind `birdinfer bench`: what each stage and each model of a config costs
on this machine, and what fits each BirdCLEF edition's CPU budget."""

from birdinfer.budget.measure import BudgetSettings, measure_budget, summary
from birdinfer.budget.report import write_report

__all__ = ["BudgetSettings", "measure_budget", "summary", "write_report"]
