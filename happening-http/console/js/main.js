// The Happening web console: signs the tab in (a link's #access_token=, the form, or the
// OpenID Connect provider) and routes to the page of the path.
import { start as startAuth } from './auth.js';
import { start } from './router.js';

startAuth();
start();
