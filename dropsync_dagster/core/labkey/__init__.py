"""LabKey: connection and transport over the official client, columns, presence, write-back and planning."""
