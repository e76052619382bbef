"""Payment providers: adapters behind the PaymentProvider port."""
