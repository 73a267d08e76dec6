//! SNMP client on snmp2.
