"""SmartContent: an AI content platform served as one GraphQL API."""

__version__ = "0.1.0"
