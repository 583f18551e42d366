// Placeholder so a library target with no sources yet still builds.
