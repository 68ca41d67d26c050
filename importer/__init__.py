"""media-import: backfill media play logs into HubSpot's Media Bridge API."""

__version__ = "0.1.0"
