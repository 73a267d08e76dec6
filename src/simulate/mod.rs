//! SNMP agent simulator serving .snmprec recordings.
