"""Data Vic patronage CSVs: cleaning the real files' quirks, parsing, and the SQLite dataset."""
