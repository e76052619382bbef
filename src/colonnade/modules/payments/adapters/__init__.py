"""Payment providers behind the PaymentProvider port, and a circuit breaker kept in Redis."""
