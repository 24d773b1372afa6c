"""The example queries `demo` runs and prints for its reader, as they would type them: one over
the view that unifies both APIs, one over an analyst view (docs/analysts.md)."""

BY_SOURCE_AND_STATUS = """\
SELECT source, status, count(*) AS messages, sum(price) AS price
FROM twilio.messages
GROUP BY source, status
ORDER BY source, messages DESC"""

DAILY_OVERVIEW = """\
SELECT day, source, price_unit, messages, outbound, inbound, delivered, read, undelivered, failed,
       spend, median_seconds_to_delivered
FROM twilio.daily_account_overview
ORDER BY day, source, price_unit"""
