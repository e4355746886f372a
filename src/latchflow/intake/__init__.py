"""Events in: trigger URL deliveries, vendor webhooks, schedule fires and polls become runs."""
