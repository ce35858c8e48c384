import { createPinia } from 'pinia';
import { createApp } from 'vue';
import App from './App.vue';
import './style.css';
import './theme';

createApp(App).use(createPinia()).mount('#app');
