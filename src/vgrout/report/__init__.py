"""Reports from run directories: gate classifier diagnostics, cross-arm comparison over
seeds, PNG plots. Reads files only; never imports torch."""
