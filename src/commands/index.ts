/** Importing this module registers the heavier sub-commands with the CLI dispatcher. */
