"""Domain logic of dropsync; never imports dagster."""
