"""Servers and builders the tests share: the LabKey test server, drops, Dagster helpers."""
