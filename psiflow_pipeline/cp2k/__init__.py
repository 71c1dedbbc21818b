"""CP2K as the reference level of theory: templates, how CP2K is started,
fresh processes and persistent shells, output parsing, isolated atoms."""
