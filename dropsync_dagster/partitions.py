"""One dynamic partition per drop; keys are `<root>-<folder>` (see core.discovery.drop_key)."""

import dagster as dg

drops = dg.DynamicPartitionsDefinition(name="drops")
