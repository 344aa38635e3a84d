"""The CWMP endpoint devices talk to (SOAP over HTTP, TR-069 section 3.4)."""
