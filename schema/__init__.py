"""The one Strawberry schema: types, inputs, enums. Resolvers live in `resolvers/`."""
