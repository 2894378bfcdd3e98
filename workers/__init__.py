"""arq worker: settings and thin task functions over app.services."""
