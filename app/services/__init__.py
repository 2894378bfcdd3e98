"""Domain services: transactions, permission checks and business rules. No GraphQL here."""
