"""The fleet database: tables, engines and schema migrations."""
