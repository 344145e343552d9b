DROP INDEX rectifications_due_order;
