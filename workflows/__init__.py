"""Workflow definitions: declarative data (states, steps, guards, permission policy), validated
when registered. Definitions never touch storage; the engine runs them."""
