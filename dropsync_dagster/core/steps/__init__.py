"""One module per asset: the domain work of each step of a drop run, free of Dagster."""
