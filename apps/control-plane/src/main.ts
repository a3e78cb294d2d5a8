import { main } from '@xyp/bootstrap';
import { controlPlaneService } from './control-plane.service';

main(controlPlaneService);
