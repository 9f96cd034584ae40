"""The machine: bus loop, vend session, journal, outbox, commands, DEX audit, config."""
