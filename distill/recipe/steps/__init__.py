"""The bodies of the recipe's steps, one module each: `run(...)` does the work into the step's
folder and returns the summary shown in the run's table (distill.recipe.plan wires them up)."""
