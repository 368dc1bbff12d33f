/** The two databases the library runs on. */
export type Dialect = 'sqlite' | 'postgres';
