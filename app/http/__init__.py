"""HTTP surface: ASGI middleware, the GraphQL view and the operations endpoints."""
