//! A faithful stand-in for FreeSWITCH's mod_event_socket in outbound mode.
