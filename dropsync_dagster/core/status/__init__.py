"""The status store: drop and file documents, SQLite and CouchDB stores, claims and run bookkeeping."""
