"""twilio-archive: a complete, SQL-queryable archive of a Twilio account's messages in Postgres."""

__version__ = "0.1.0"
