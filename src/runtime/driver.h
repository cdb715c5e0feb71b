/* The MongoDB C driver's process-wide set-up: mongoc_init and where the
 * driver's log goes. Once per process, whichever environment loads first. */
#ifndef DRIVER_H
#define DRIVER_H

/* Main thread of any environment; safe to call from each. */
void aav_driver_init_once(void);

#endif
