void greet(const char *who);
int greet_count(void);
