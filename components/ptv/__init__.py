"""The PTV Timetable API v3: request signing, a signed client, and the SQLite store."""
