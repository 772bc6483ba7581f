"""LabKey: connection and transport over the official client, columns, presence, write-back and planning."""

API_KEY_ENV = "LABKEY_API_KEY"  # named in messages about credentials; read only by the deployment

