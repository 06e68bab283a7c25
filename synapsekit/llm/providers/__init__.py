"""One module per wire protocol. Importing a module here does not import its SDK."""
