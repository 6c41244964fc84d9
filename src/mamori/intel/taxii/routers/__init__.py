"""One router per TAXII resource."""
